"""Telling people: the in-app inbox and outbox, delivery channels (email, group robots), message templates and the
deadline reminders."""
