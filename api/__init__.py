"""The edge of facegate: the `facegate` command line now; the FastAPI door-access service (issue 6)."""
