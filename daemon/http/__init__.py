"""The HTTP API: app.py is an aiohttp Application factory, settings.py its `http:` section."""
