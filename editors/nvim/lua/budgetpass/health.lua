--- :checkhealth budgetpass: the three things that make the plugin useless when missing.
local M = {}

local function model_name()
  local settings = require('budgetpass').options.settings or {}
  return settings.model or 'qwen2.5-coder-0.5b'
end

function M.check()
  local budgetpass = require('budgetpass')
  vim.health.start('budgetpass server')
  if vim.fn.has('nvim-0.11') == 0 then
    vim.health.error('Neovim 0.11+ is required (vim.lsp.config / vim.lsp.enable)')
  end
  if not vim.lsp.inline_completion then
    vim.health.warn('this Neovim has no vim.lsp.inline_completion (0.12+): no ghost text, use :BudgetpassGenerate')
  end
  local cmd = budgetpass.resolve_cmd()
  if not cmd then
    vim.health.error('`budgetpass` not found', {
      'pip install budgetpass (or `make install` in its repository) and put it on $PATH',
      'or setup{ cmd = { "/path/to/.venv/bin/budgetpass", "serve" } }',
    })
    return
  end
  if vim.fn.executable(cmd[1]) == 0 then
    vim.health.error(cmd[1] .. ' is not executable')
    return
  end
  vim.health.ok('server: ' .. table.concat(cmd, ' '))
  local clients = vim.lsp.get_clients({ name = 'budgetpass' })
  if #clients > 0 then
    vim.health.ok(#clients .. ' client(s) running')
  else
    vim.health.info('no client running yet (it starts when a Python buffer opens)')
  end

  vim.health.start('budgetpass model')
  local name = model_name()
  local res = vim.system({ cmd[1], 'models', name, '--json' }, { text = true }):wait(30000)
  if res.code ~= 0 then
    vim.health.error(('model %s is not available: %s'):format(name, vim.trim(res.stderr or '')), {
      'budgetpass models fetch ' .. name,
    })
  else
    local ok, info = pcall(vim.json.decode, res.stdout)
    if ok and type(info) == 'table' and info.path and vim.uv.fs_stat(info.path) then
      vim.health.ok(('model %s cached: %s'):format(name, info.path))
    else
      vim.health.error(('model %s is not cached'):format(name), { 'budgetpass models fetch ' .. name })
    end
  end

  vim.health.start('budgetpass sandbox')
  if vim.fn.executable('bwrap') == 0 then
    vim.health.warn('bubblewrap (bwrap) is missing: candidate code would run without a sandbox', {
      'apt-get install bubblewrap (or your distribution\'s package)',
    })
    return
  end
  local probe = vim.system({ 'bwrap', '--ro-bind', '/', '/', '--dev', '/dev', '--unshare-all', 'true' }):wait(10000)
  if probe.code == 0 then
    vim.health.ok('bwrap works: candidates run sandboxed')
  else
    vim.health.warn('bwrap is installed but cannot create a sandbox here (AppArmor/seccomp?)', {
      'on Ubuntu 24.04+: allow unprivileged user namespaces for bwrap, or set sandbox = "process"',
    })
  end
end

return M
