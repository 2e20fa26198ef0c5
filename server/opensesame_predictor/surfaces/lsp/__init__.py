"""The language server (`opensesame-predictor lsp`): pygls handlers over plain feature functions."""
