"""closedloop: closed-loop marketing attribution, self-hosted."""

__version__ = "0.1.0"
