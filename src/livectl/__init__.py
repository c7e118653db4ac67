"""livectl: a real-time control center (直播中控台) for e-commerce live streams."""

__version__ = "0.1.0"
