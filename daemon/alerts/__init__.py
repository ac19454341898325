"""Alert lifecycle and delivery: events.py (what comes in), manager.py (AlertManager),
worker.py (OutboxWorker), sender.py (CommandSender). Imported by path; this package
imports nothing so that configuration can load its settings without the rest."""
