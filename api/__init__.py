"""The HTTP edge and composition root: the FastAPI app, the ``copilot`` command line, wiring."""
