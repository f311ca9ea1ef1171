-- Nothing starts until require('budgetpass').setup{} is called: users opt in explicitly.
if vim.g.loaded_budgetpass then
  return
end
vim.g.loaded_budgetpass = true
