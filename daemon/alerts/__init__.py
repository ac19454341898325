"""Alert lifecycle and delivery.

events.py   SiteLevelChange, DeviceFault: what the detector core hands in
manager.py  AlertManager: decides alerts, queues messages and device commands (never sends)
routing.py  who hears what; recipients.py how (apprise targets, ${ENV} secrets)
messages.py editable templates (templates/); device_commands.py sirens and reporting rates
outbox.py   the durable outbox in the journal; worker.py OutboxWorker delivers it
sender.py   CommandSender (MQTT QoS 1); delivery.py apprise, one target at a time
service.py  AlertService: the above wired for the running service
Modules are imported by path; this package imports nothing, so the configuration can load
its sections (settings.py) without the rest."""
