"""OpenSesame Predictor: which API call should I make next?"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("opensesame-predictor")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
