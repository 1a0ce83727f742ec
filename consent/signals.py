"""What the consent app announces. ``consent`` never imports ``gallery``; these signals
(and the hooks in ``consent/hooks.py``) are the bridge.
"""

from django.dispatch import Signal

# Sent after the transaction that changed a consent's standing commits.
# Arguments: consent (the Consent), reason ("withdrawn", "expired", "granted", …).
consent_changed = Signal()

# Sent *inside* the transaction that records a consent superseding earlier ones, so that
# the records under the old consents move under the new one in that same transaction
# (a crash can then never leave a case under a consent that no longer speaks for the
# patient). Receivers do database work only; an exception rolls the new consent back.
# Arguments: consent (the new Consent), superseded (ids of the consents it replaced).
consent_superseded = Signal()
