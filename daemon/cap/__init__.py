"""Site warnings as OASIS CAP 1.2 (Common Alerting Protocol, ITU-T X.1303) for public-warning
systems: release platforms, cell broadcast, village loudspeakers, aggregators.

settings.py   the `cap:` configuration section
grades.py     urgency, severity, certainty and response from the level and the forecast
message.py    one CAP <alert> (XML, zh-CN and en <info>) from an alert's state
store.py      the messages, versioned per alert, in the journal beside the alert tables
publisher.py  CapPublisher: the lifecycle records a message at every open, change and close
feed.py       the Atom feed of current and recent messages
signing.py    optional XML-DSig signature (signxml, the `cap-sign` extra)
schema/       the official CAP-v1.2.xsd with its OASIS notice (tests validate every message)
"""
