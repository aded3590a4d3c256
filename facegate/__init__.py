"""facegate's core: settings and the error types every other folder shares.

It imports nothing from enroll/, recognize/, gan/, db/ or api/; they all import it.
"""

from facegate.errors import FacegateError
from facegate.settings import Settings, get_settings

__version__ = "0.1.0"

__all__ = ["FacegateError", "Settings", "get_settings", "__version__"]
