-- Headless Neovim: start the language server through clients/nvim, open a .http file, ask
-- for completions after `GET ` and write the top label (by sortText) to $OPENSESAME_OUT.
local out = os.getenv("OPENSESAME_OUT")
local function finish(lines)
  vim.fn.writefile(lines, out)
  vim.cmd("qa!")
end

package.path = os.getenv("OPENSESAME_NVIM_LUA") .. "/?.lua;" .. package.path
local opensesame = require("opensesame")
opensesame.setup({
  cmd = vim.fn.json_decode(os.getenv("OPENSESAME_CMD")),
})

vim.cmd("edit " .. vim.fn.fnameescape(os.getenv("OPENSESAME_FILE")))
local buf = vim.api.nvim_get_current_buf()
if vim.bo[buf].filetype ~= "http" then
  return finish({ "error: filetype " .. vim.bo[buf].filetype })
end

local ready = vim.wait(60000, function()
  return opensesame.status ~= nil and #vim.lsp.buf_get_clients(buf) > 0
end, 50)
if not ready then
  return finish({ "error: the server did not index in time" })
end

-- After `POST ` at the end of the line: a place Normal mode's cursor cannot reach, so the
-- position is given as an Insert-mode client would send it.
local params = {
  textDocument = { uri = vim.uri_from_bufnr(buf) },
  position = {
    line = tonumber(os.getenv("OPENSESAME_LINE")),
    character = tonumber(os.getenv("OPENSESAME_CHARACTER")),
  },
}
local responses = vim.lsp.buf_request_sync(buf, "textDocument/completion", params, 20000)
local items = {}
for _, response in pairs(responses or {}) do
  local result = response.result or {}
  for _, item in ipairs(result.items or result) do
    table.insert(items, item)
  end
end
if #items == 0 then
  return finish({ "error: no completion items" })
end
table.sort(items, function(a, b)
  return (a.sortText or a.label) < (b.sortText or b.label)
end)
local edit = items[1].textEdit and items[1].textEdit.newText or ""
finish({ items[1].label, edit, tostring(opensesame.status.operations) })
