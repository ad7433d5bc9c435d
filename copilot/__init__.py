"""The domain core of the agent-assist copilot: conversations, brand voice, engines and the ports they need.

Nothing here imports ``knowledge``, ``api`` or ``evals``; adapters implement the Protocols in
``copilot.ports`` and the composition root in ``api`` wires them together.
"""

__version__ = "0.1.0"
