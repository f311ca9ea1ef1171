--- budgetpass for Neovim: a thin client of `budgetpass serve`.
---
--- All the work (sampling, running tests, ranking) happens in the language server; this file only
--- starts it with the user's settings and maps editor actions onto its LSP requests, so that the
--- Neovim and VS Code plugins behave the same.
local M = {}

local NAME = 'budgetpass'
local GENERATE = 'budgetpass.generateUntilPass'
local CANDIDATES = 'budgetpass.showCandidates'

--- Plugin options. `settings` is the server's `budgetpass` section, nested the way the server
--- reads it, e.g. `{ model = 'qwen2.5-coder-0.5b', budget = { metric = 'flops', calls = 2 } }`;
--- anything left out takes the server's offline defaults.
M.defaults = {
  cmd = nil, -- default: { <budgetpass on $PATH or in <root>/.venv/bin>, 'serve' }
  filetypes = { 'python' },
  root_markers = { 'pyproject.toml', 'setup.cfg', 'setup.py', 'pytest.ini', '.git' },
  settings = {},
  inline_completion = true, -- use Neovim's built-in inline completion (ghost text) when available
  codelens = true, -- show "Generate until tests pass" lenses and refresh them on edits/saves
  log_level = nil, -- e.g. vim.log.levels.DEBUG to see the server's window/logMessage in :messages
}

M.options = vim.deepcopy(M.defaults)

--- Per-buffer in-flight generate request: bufnr -> { client_id, request_id }.
local running = {}
--- Last progress text, for statuslines: `require('budgetpass').status()`.
local last_status = ''
--- The server's last `budgetpass/status`: { state = 'loading'|'ready'|'failed', model, seconds, message }.
local model_state = nil

local function notify(msg, level)
  vim.notify('budgetpass: ' .. msg, level or vim.log.levels.INFO)
end

--- The server executable: explicit `cmd`, then $PATH, then a project virtualenv, because a
--- `pip install -e .` into `.venv` is the usual way to get budgetpass.
function M.resolve_cmd(root)
  if M.options.cmd then
    return M.options.cmd
  end
  local exe = vim.fn.exepath('budgetpass')
  if exe == '' then
    root = root or vim.fn.getcwd()
    local venv = vim.fs.joinpath(root, '.venv', 'bin', 'budgetpass')
    if vim.fn.executable(venv) == 1 then
      exe = venv
    end
  end
  if exe == '' then
    return nil
  end
  return { exe, 'serve' }
end

--- The client attached to `bufnr`, or nil with a message saying how to get one.
function M.client(bufnr, quiet)
  bufnr = vim._resolve_bufnr(bufnr)
  local client = vim.lsp.get_clients({ bufnr = bufnr, name = NAME })[1]
  if not client and not quiet then
    notify(
      'no budgetpass server attached to this buffer (filetypes: '
        .. table.concat(M.options.filetypes, ', ')
        .. '; see :checkhealth budgetpass)',
      vim.log.levels.WARN
    )
  end
  return client
end

local function position_args(client, bufnr)
  local params = vim.lsp.util.make_position_params(vim.fn.bufwinid(bufnr), client.offset_encoding)
  return { uri = params.textDocument.uri, position = params.position }
end

--- Run "generate until tests pass" for the function at the cursor. The server reports progress
--- ($/progress, shown by the LspProgress autocmd below) and applies the body with
--- workspace/applyEdit, which Neovim applies to the buffer only: nothing is written to disk.
function M.generate(bufnr)
  bufnr = vim._resolve_bufnr(bufnr)
  local client = M.client(bufnr)
  if not client then
    return
  end
  if running[bufnr] then
    notify('a generation is already running for this buffer (:BudgetpassCancel stops it)', vim.log.levels.WARN)
    return
  end
  local command = { title = 'Generate until tests pass', command = GENERATE, arguments = { position_args(client, bufnr) } }
  local ok, request_id = client:request('workspace/executeCommand', {
    command = command.command,
    arguments = command.arguments,
  }, function(err, result)
    running[bufnr] = nil
    if err then
      -- -32800 is RequestCancelled: the user asked for it, say so quietly.
      if err.code == -32800 then
        notify('generation cancelled')
      else
        notify('generate failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      end
    end
    M.last_result = result
    if M.options.codelens and vim.api.nvim_buf_is_valid(bufnr) then
      vim.lsp.codelens.refresh({ bufnr = bufnr })
    end
    vim.api.nvim_exec_autocmds('User', { pattern = 'BudgetpassGenerateDone', data = { bufnr = bufnr, result = result, error = err } })
  end, bufnr)
  if ok then
    running[bufnr] = { client_id = client.id, request_id = request_id }
  else
    notify('the server is not running (see :LspLog)', vim.log.levels.ERROR)
  end
end

--- Cancel the running generation for `bufnr` ($/cancelRequest; the server stops sampling).
function M.cancel(bufnr)
  bufnr = vim._resolve_bufnr(bufnr)
  local job = running[bufnr]
  if not job then
    notify('nothing is running for this buffer')
    return
  end
  local client = vim.lsp.get_client_by_id(job.client_id)
  if client then
    client:cancel_request(job.request_id)
  end
  running[bufnr] = nil
  notify('generation cancelled')
end

function M.is_running(bufnr)
  return running[vim._resolve_bufnr(bufnr)] ~= nil
end

--- One line per candidate of `budgetpass.showCandidates` (app/report.py Candidate.to_json).
function M.candidate_label(c, selected)
  local outcomes = c.outcomes or {}
  local passing = #vim.tbl_filter(function(o)
    return o.outcome == 'passed'
  end, outcomes)
  local verdict
  if c.decoded == false then
    verdict = 'not finished' -- cut off when another candidate passed (or on cancel)
  elseif not c.tested then
    verdict = c.parses and 'untested' or 'does not parse'
  else
    verdict = string.format('%s %d/%d tests', c.passed and '✓' or '✗', passing, #outcomes)
  end
  if type(c.repair_of) == 'number' then -- a repair round's fix of a failed candidate
    verdict = string.format('%s (fixes #%d)', verdict, c.repair_of)
  end
  local first = ''
  for line in vim.gsplit(c.body or '', '\n', { plain = true }) do
    if vim.trim(line) ~= '' then
      first = vim.trim(line)
      break
    end
  end
  return string.format('%s#%d %-16s lp=%.2f  %s', selected and '* ' or '  ', c.index, verdict, c.mean_logprob or 0, first)
end

--- Replace the function body (the run's `range`) with one candidate, as the server's own
--- applyEdit does; refused if the buffer changed since the run (versioned edit).
local function apply_candidate(client, bufnr, result, c)
  local version = vim.lsp.util.buf_versions[bufnr]
  if result.version and version ~= result.version then
    notify('the buffer changed since these candidates were made; nothing applied (generate again)', vim.log.levels.WARN)
    return
  end
  local body = c.body
  if body:sub(-1) ~= '\n' then
    body = body .. '\n'
  end
  vim.lsp.util.apply_workspace_edit({
    documentChanges = {
      {
        textDocument = { uri = vim.uri_from_bufnr(bufnr), version = result.version },
        edits = { { range = result.range, newText = body } },
      },
    },
  }, client.offset_encoding)
end

--- Pick among the candidates of the last run for the function at the cursor (the server runs one
--- if there is none), with their test results, via vim.ui.select.
function M.candidates(bufnr, on_done)
  bufnr = vim._resolve_bufnr(bufnr)
  local client = M.client(bufnr)
  if not client then
    return
  end
  client:request('workspace/executeCommand', {
    command = CANDIDATES,
    arguments = { position_args(client, bufnr) },
  }, function(err, result)
    if err then
      notify('candidates: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    if type(result) ~= 'table' or not result.range or vim.tbl_isempty(result.candidates or {}) then
      notify('no candidates for the function at the cursor')
      return
    end
    vim.ui.select(result.candidates, {
      prompt = 'budgetpass candidates (' .. (result.status or '?') .. ')',
      format_item = function(c)
        return M.candidate_label(c, c.index == result.selected)
      end,
    }, function(choice)
      if choice then
        apply_candidate(client, bufnr, result, choice)
      end
      if on_done then
        on_done(choice)
      end
    end)
  end, bufnr)
end

--- Replace the server settings and tell the server (workspace/didChangeConfiguration).
function M.set_settings(settings)
  M.options.settings = vim.tbl_deep_extend('force', M.options.settings, settings)
  for _, client in ipairs(vim.lsp.get_clients({ name = NAME })) do
    client.settings = { [NAME] = M.options.settings }
    client:notify('workspace/didChangeConfiguration', { settings = client.settings })
  end
end

--- For statuslines: a running generation's progress, else the model's state.
function M.status()
  if last_status ~= '' or not model_state then
    return last_status
  end
  if model_state.state == 'ready' then
    return 'budgetpass · ' .. model_state.model
  end
  return 'budgetpass · ' .. model_state.state .. ' ' .. model_state.model
end

--- The server's last `budgetpass/status` notification (nil before the first).
function M.model_state()
  return model_state
end

local function on_status(_, params) -- a failure also comes as window/showMessage: no notify here
  model_state = params
  vim.cmd.redrawstatus()
end

local function progress_text(value)
  local parts = { value.title, value.message }
  if value.percentage then
    table.insert(parts, value.percentage .. '%')
  end
  return table.concat(vim.tbl_filter(function(s)
    return s and s ~= ''
  end, parts), ' · ')
end

--- The last inline items per buffer (each item's command title is its test outcome, e.g.
--- "✓ 3/3 tests"), shown beside the ghost text Neovim draws for the selected one.
local inline_items = {}
local STATUS_NS = vim.api.nvim_create_namespace('budgetpass.inline_status')
local GHOST_NS = vim.api.nvim_create_namespace('nvim.lsp.inline_completion')

--- Keep this client's inline items: Neovim's inline completion keeps them to itself.
local function tap_inline_items(client)
  local request = client.request
  client.request = function(self, method, params, handler, bufnr)
    if method == 'textDocument/inlineCompletion' and handler then
      local handle = handler
      handler = function(err, result, ctx, ...)
        inline_items[ctx.bufnr or bufnr] = not err and result and (result.items or result) or nil
        return handle(err, result, ctx, ...)
      end
    end
    return request(self, method, params, handler, bufnr)
  end
end

--- The test outcome of the inline item shown in `bufnr` ("✓ 3/3 tests", "✗ 1/3 tests",
--- "untested"), with its row and 1-based index; nil when no budgetpass ghost text is shown.
function M.inline_status(bufnr)
  bufnr = vim._resolve_bufnr(bufnr)
  local items = inline_items[bufnr]
  if not items or #items == 0 then
    return nil
  end
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, GHOST_NS, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local row, details = marks[1][2], marks[1][4]
  local index = 1 -- after select(), Neovim appends " (i/n)" to the ghost text's last line
  for _, line in ipairs(vim.list_extend({ details.virt_text or {} }, details.virt_lines or {})) do
    for _, chunk in ipairs(line) do
      local i = chunk[2] == 'ComplHintMore' and chunk[1]:match('^ %((%d+)/%d+%)$')
      if i then
        index = tonumber(i)
      end
    end
  end
  local item = items[index]
  if not (item and item.command and item.command.command == 'budgetpass.inlineStatus') then
    return nil
  end
  return { label = item.command.title, index = index, count = #items, row = row,
           status = item.command.arguments[1].status }
end

vim.api.nvim_set_decoration_provider(STATUS_NS, {
  on_win = function(_, _, bufnr)
    local shown = inline_items[bufnr] and M.inline_status(bufnr)
    if shown then
      local hl = shown.status == 'passed' and 'DiagnosticOk'
        or shown.status == 'failed' and 'DiagnosticWarn' or 'Comment'
      vim.api.nvim_buf_set_extmark(bufnr, STATUS_NS, shown.row, 0, {
        virt_text = { { ' ' .. shown.label .. ' ', hl } }, virt_text_pos = 'right_align', ephemeral = true })
    end
  end,
})

-- Run by Neovim when an inline item is accepted: say what was accepted.
vim.lsp.commands['budgetpass.inlineStatus'] = function(command)
  local args = command.arguments and command.arguments[1] or {}
  notify(string.format('accepted inline candidate %d: %s', (args.index or 0) + 1, command.title))
end

local function on_attach(client, bufnr)
  if M.options.inline_completion and vim.lsp.inline_completion
    and client:supports_method('textDocument/inlineCompletion', bufnr) then
    if not client._budgetpass_tapped then
      client._budgetpass_tapped = true
      tap_inline_items(client)
    end
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  end
  if M.options.codelens and client:supports_method('textDocument/codeLens', bufnr) then
    local group = vim.api.nvim_create_augroup('budgetpass_codelens_' .. bufnr, { clear = true })
    vim.api.nvim_create_autocmd({ 'BufEnter', 'InsertLeave', 'BufWritePost', 'CursorHold' }, {
      group = group,
      buffer = bufnr,
      callback = function()
        vim.lsp.codelens.refresh({ bufnr = bufnr })
      end,
    })
    vim.lsp.codelens.refresh({ bufnr = bufnr })
  end
end

local commands_defined = false
local function define_commands()
  if commands_defined then
    return
  end
  commands_defined = true
  vim.api.nvim_create_user_command('BudgetpassGenerate', function()
    M.generate(0)
  end, { desc = 'budgetpass: generate the function at the cursor until its tests pass' })
  vim.api.nvim_create_user_command('BudgetpassCandidates', function()
    M.candidates(0)
  end, { desc = "budgetpass: pick among the last run's candidates" })
  vim.api.nvim_create_user_command('BudgetpassCancel', function()
    M.cancel(0)
  end, { desc = 'budgetpass: cancel the running generation' })

  local group = vim.api.nvim_create_augroup('budgetpass', { clear = true })
  vim.api.nvim_create_autocmd('LspProgress', {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if not client or client.name ~= NAME then
        return
      end
      local value = ev.data.params.value
      last_status = value.kind == 'end' and '' or progress_text(value)
      vim.api.nvim_echo({ { 'budgetpass: ' .. progress_text(value) } }, false, {})
      vim.cmd.redrawstatus()
    end,
  })
end

--- Configure and enable the server. Call once from your config: `require('budgetpass').setup{}`.
function M.setup(opts)
  opts = opts or {}
  vim.validate('opts.settings', opts.settings, 'table', true)
  vim.validate('opts.cmd', opts.cmd, 'table', true)
  vim.validate('opts.filetypes', opts.filetypes, 'table', true)
  M.options = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  define_commands()

  local cmd = M.resolve_cmd()
  if not cmd then
    notify('`budgetpass` not found on $PATH or in ./.venv/bin: pip install budgetpass, or pass cmd = { "/path/to/budgetpass", "serve" } to setup()', vim.log.levels.WARN)
    return
  end
  -- An empty Lua table would go out as a JSON array: send `{}` for "no settings".
  local section = next(M.options.settings) and M.options.settings or vim.empty_dict()
  vim.lsp.config(NAME, {
    cmd = cmd,
    filetypes = M.options.filetypes,
    root_markers = M.options.root_markers,
    -- Both: the server reads initializationOptions at start and workspace/configuration later.
    init_options = { [NAME] = section },
    settings = { [NAME] = section },
    handlers = { ['budgetpass/status'] = on_status },
    on_attach = on_attach,
  })
  vim.lsp.enable(NAME)
end

return M
