"""The platform every area stands on: settings (``config``), the MongoDB connection (``db``), the clock, named
errors, translatable text (``i18n``) and durations in words, per-process versioned caches, encryption of personal
data (``crypto``), the validators of Chinese contact data, and the signals by which the domain asks for background
work (``background``). Imports no other area."""
