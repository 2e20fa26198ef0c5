"""`python -m opensesame_predictor` runs the command line."""

from opensesame_predictor.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
