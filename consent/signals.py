"""The one announcement the consent app makes.

The gallery listens to it and takes every case under the consent off the public
surfaces. ``consent`` never imports ``gallery``; this signal is the bridge.
"""

from django.dispatch import Signal

# Sent after the transaction that changed a consent's standing commits.
# Arguments: consent (the Consent), reason ("withdrawn", "expired", "granted", …).
consent_changed = Signal()
