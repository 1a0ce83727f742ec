import pytest
from django.core.management import call_command

from gallery.models import Case

pytestmark = pytest.mark.django_db


def test_seed_demo_publishes_labelled_cases_for_both_treatments_and_every_skin_type(client):
    call_command("seed_demo", count=24, stdout=open("/dev/null", "w"))
    public = Case.objects.public()
    assert public.count() == 24
    assert set(public.values_list("fitzpatrick", flat=True)) == {1, 2, 3, 4, 5, 6}
    for slug in ("microneedling", "rf-microneedling"):
        assert set(public.filter(treatment__slug=slug).values_list("fitzpatrick", flat=True)) == {
            1,
            2,
            3,
            4,
            5,
            6,
        }
    assert public.values("concerns").distinct().count() >= 4
    assert not public.filter(is_demo=False).exists()
    html = client.get("/gallery/").content.decode()
    assert "Demo case" in html
    # Idempotent: a second run creates nothing.
    call_command("seed_demo", count=24, stdout=open("/dev/null", "w"))
    assert Case.objects.count() == 24
