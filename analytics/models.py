"""Daily counts: which cases bring consultations, and which filters people use.

No visitor is recorded, only numbers per day. A case's row keeps a snapshot of the facts
the report groups by (plain fields, not read through the case), so the numbers outlive the
case: a withdrawn case stays in the totals, an erased one too (its ``case`` link is set to
null), and the report never needs the case, let alone its photos, to show them.
"""

from django.db import models


class DailyCaseCount(models.Model):
    date = models.DateField()
    public_id = models.CharField(max_length=12)
    case = models.ForeignKey(
        "gallery.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    treatment = models.CharField(max_length=100, blank=True)
    fitzpatrick = models.PositiveSmallIntegerField(null=True, blank=True)
    skin_type = models.CharField(max_length=20, blank=True)
    practitioner = models.CharField(max_length=200, blank=True)
    location = models.CharField(max_length=200, blank=True)
    views = models.PositiveIntegerField(default=0)
    comparisons = models.PositiveIntegerField(default=0)
    bookings = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["date", "public_id"], name="analytics_dailycasecount_one_per_case_day"
            )
        ]
        indexes = [models.Index(fields=["date"], name="analytics_case_count_date")]
        permissions = [("view_report", "Can see the analytics report")]

    def __str__(self) -> str:
        return f"{self.public_id} on {self.date}"


class DailyFilterCount(models.Model):
    date = models.DateField()
    name = models.CharField(max_length=30)
    value = models.CharField(max_length=40)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["date", "name", "value"], name="analytics_dailyfiltercount_one_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value} on {self.date}"


class FlushedMinute(models.Model):
    """A minute of counts already added to the daily rows, written in the same transaction:
    a flush that runs twice, or two flushes at once, add each minute once."""

    minute = models.DateTimeField(unique=True)

    def __str__(self) -> str:
        return f"counts of {self.minute:%Y-%m-%d %H:%M} added"
