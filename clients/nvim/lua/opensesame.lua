-- OpenSesame Predictor for Neovim: ranked API-call completions, code actions, hovers and
-- diagnostics from the workspace's OpenAPI specs.
--
-- Works on Neovim 0.7+ (vim.lsp.start_client). Usage, in init.lua:
--   require("opensesame").setup({ specs = { "api/openapi.yaml" } })
local M = {}

M.filetypes = {
  "http", "rest", "python", "javascript", "typescript", "javascriptreact", "typescriptreact",
  "sh", "bash", "zsh",
}

-- The last `opensesame/indexed` status the server sent: { operations, specs, errors, generation }.
M.status = nil

local defaults = {
  cmd = { "opensesame-predictor", "lsp" },
  specs = {}, -- extra spec files (inside the workspace) or URLs
  root_markers = { ".git", "pyproject.toml", "package.json", "openapi.yaml", "openapi.json" },
}

-- The nearest folder above the buffer with one of the markers (vim.fs is 0.8+: use findfile).
local function root_dir(bufnr, markers)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local start = name ~= "" and vim.fn.fnamemodify(name, ":p:h") or vim.fn.getcwd()
  for _, marker in ipairs(markers) do
    local dir = vim.fn.finddir(marker, start .. ";")
    local file = vim.fn.findfile(marker, start .. ";")
    if dir ~= "" then
      return vim.fn.fnamemodify(dir, ":p:h:h")
    end
    if file ~= "" then
      return vim.fn.fnamemodify(file, ":p:h")
    end
  end
  return start
end

local function merged(opts)
  local config = vim.tbl_deep_extend("force", {}, defaults, opts or {})
  return config
end

local function client_config(bufnr, opts)
  local config = merged(opts)
  local root = config.root_dir or root_dir(bufnr, config.root_markers)
  return {
    name = "opensesame",
    cmd = config.cmd,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = vim.fn.fnamemodify(root, ":t") } },
    init_options = { specs = config.specs },
    settings = { opensesame = { specs = config.specs } },
    handlers = {
      ["opensesame/indexed"] = function(_, result)
        M.status = result
      end,
    },
    on_attach = config.on_attach,
    capabilities = config.capabilities,
  }
end

-- Neovim's omnifunc (vim.lsp.omnifunc) inserts an item's text through complete(), which
-- knows no line breaks: a whole request would land on one line, joined by NUL bytes. Once such
-- an item is accepted, split the inserted text into real lines and leave the cursor at its end.
local function split_completed_lines()
  local item = vim.v.completed_item
  if type(item) ~= "table" or type(item.word) ~= "string" or not item.word:find("\n", 1, true) then
    return
  end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  -- the inserted line breaks are NULs in the buffer (read as "\0", or "\n" in some versions)
  local line = vim.api.nvim_get_current_line():gsub("%z", "\n")
  local before, after = line:sub(1, col), line:sub(col + 1)
  if before:sub(-#item.word) ~= item.word then
    return
  end
  local lines = vim.split(before, "\n", true)
  local last = lines[#lines]
  lines[#lines] = last .. after
  vim.api.nvim_buf_set_lines(0, row - 1, row, true, lines)
  vim.api.nvim_win_set_cursor(0, { row + #lines - 1, #last })
end

M.split_completed_lines = split_completed_lines

-- Starts the server (once per root folder) and attaches it to the buffer; returns the client id.
-- Neovim 0.8+ has vim.lsp.start, which reuses a running client; 0.7 has only start_client.
M.clients = {}
function M.attach(bufnr, opts)
  local config = client_config(bufnr, opts)
  if vim.lsp.start then
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  local id = M.clients[config.root_dir]
  if not id or vim.lsp.client_is_stopped(id) then
    id = vim.lsp.start_client(config)
    M.clients[config.root_dir] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

local function attach_buffer(bufnr, opts, group)
  vim.api.nvim_clear_autocmds({ group = group, buffer = bufnr })
  vim.api.nvim_create_autocmd("CompleteDone", {
    group = group,
    buffer = bufnr,
    callback = split_completed_lines,
  })
  return M.attach(bufnr, opts)
end

function M.setup(opts)
  local group = vim.api.nvim_create_augroup("opensesame", { clear = true })
  -- `.http` and `.rest` request files get the `http` filetype (Neovim 0.7 has none for them).
  vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, {
    group = group,
    pattern = { "*.http", "*.rest" },
    callback = function(args)
      vim.bo[args.buf].filetype = "http"
    end,
  })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.filetypes,
    callback = function(args)
      attach_buffer(args.buf, opts, group)
    end,
  })
end

return M
