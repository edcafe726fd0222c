"""aicity: an AI City operating system."""
__version__ = "0.1.0"
