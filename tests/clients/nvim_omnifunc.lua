-- Headless Neovim as a user of the README's omnifunc setup: start the language server through
-- clients/nvim, go to the empty line $OPENSESAME_LINE (1-based), type <C-x><C-o>, accept the
-- first item with <C-y>, leave Insert mode and save. $OPENSESAME_OUT gets the accepted item's
-- text (the file itself is the result).
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
local ready = vim.wait(60000, function()
  return opensesame.status ~= nil and #vim.lsp.buf_get_clients(buf) > 0
end, 50)
if not ready then
  return finish({ "error: the server did not index in time" })
end

vim.bo[buf].omnifunc = "v:lua.vim.lsp.omnifunc"
vim.api.nvim_win_set_cursor(0, { tonumber(os.getenv("OPENSESAME_LINE")), 0 })

local accepted = nil
vim.api.nvim_create_autocmd("CompleteDonePre", {
  callback = function()
    accepted = vim.v.completed_item.word
  end,
})

-- The keys are typed by Neovim's main loop once this script returns; omnifunc answers
-- asynchronously, so a timer waits for the menu before accepting.
local function keys(text)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(text, true, false, true), "n", false)
end
keys("A<C-x><C-o>")
local timer = vim.loop.new_timer()
local started = vim.loop.now()
local state = "menu"
timer:start(100, 100, vim.schedule_wrap(function()
  if state == "menu" and vim.fn.pumvisible() == 1 then
    state = "accepting"
    keys("<C-y><Esc>")
  elseif state == "accepting" and vim.fn.mode() == "n" then
    timer:stop()
    vim.cmd("write")
    finish(accepted and vim.split(accepted, "\n", true) or { "error: nothing accepted" })
  elseif vim.loop.now() - started > 30000 then
    timer:stop()
    finish({ "error: " .. state .. " timed out (mode " .. vim.fn.mode() .. ")" })
  end
end))
