"""Each treatment gets its own questions: until now both pages carried the same four."""

from importlib import import_module

from django.db import migrations

FAQ = {
    "microneedling": [
        {
            "q": "Does microneedling hurt?",
            "a": "It feels like a light prickling or scratching over the skin. How much you "
            "notice depends on how deep the needles go and on your own sensitivity, and a "
            "numbing cream put on beforehand keeps it comfortable for most people. The "
            "needling itself is quick; the time depends on the area treated.",
        },
        {
            "q": "What will my skin look like afterwards?",
            "a": "Pink and a little swollen, like mild sunburn, sometimes with light bruising. "
            "This settles within a few days. Infection or scarring are rare, and almost always "
            "follow poor hygiene or skipped aftercare, so follow your written aftercare "
            "closely and protect your skin from the sun.",
        },
        {
            "q": "How many sessions will I need?",
            "a": "Most people need a course of several sessions, spaced a few weeks apart: a "
            "single session rarely gives the change a full course does. Every case in this "
            "gallery says how many sessions it took and how far apart they were.",
        },
        {
            "q": "Why do the results in the gallery differ so much?",
            "a": "Acne scars respond differently from fine lines, and oily, dry and sensitive "
            "skin heal differently. The needle depth, the number of sessions, aftercare and "
            "your own healing all play a part, so compare yourself with cases of your skin "
            "type and concern.",
        },
        {
            "q": "How long do the results last?",
            "a": "The collagen your skin builds keeps improving it for months, but the result "
            "is not permanent: skin goes on ageing. Daily sun protection, a steady skincare "
            "routine and an occasional top-up session help it last.",
        },
    ],
    "rf-microneedling": [
        {
            "q": "How is radiofrequency microneedling different from microneedling alone?",
            "a": "The needles also deliver radiofrequency energy, which warms the deeper layers "
            "of the skin. That heat adds to the collagen building and can tighten and lift "
            "more than needling alone, which is why it is often chosen for deeper scars and "
            "looser skin. It costs more, and the chance of side effects is a little higher.",
        },
        {
            "q": "Does it hurt?",
            "a": "You feel the needles as a prickling sensation; how much depends on the depth "
            "used and on your own tolerance. A numbing cream is applied beforehand, and your "
            "practitioner adjusts the settings as they go.",
        },
        {
            "q": "What are the side effects?",
            "a": "Redness, swelling and sometimes light bruising, which can last a little "
            "longer than after plain microneedling and usually settle within days. Infection "
            "and scarring are rare when the skin is kept clean and the aftercare is followed.",
        },
        {
            "q": "When will I see the result?",
            "a": "Collagen goes on remodelling for months after the heat, so the change builds "
            "slowly. That is why the after photos of this treatment in the gallery were all "
            "taken at least six weeks after the last session.",
        },
        {
            "q": "How long do the results last?",
            "a": "Longer than the weeks of recovery, but not forever: the skin keeps ageing. "
            "Sun protection, good skincare and a maintenance session when your practitioner "
            "advises one help keep the result.",
        },
    ],
}


def distinct_faq(apps, schema_editor):
    Treatment = apps.get_model("gallery", "Treatment")
    common = import_module("gallery.migrations.0002_reference_data").FAQ_COMMON
    for slug, faq in FAQ.items():
        # A clinic that already wrote its own questions keeps them.
        for treatment in Treatment.objects.filter(slug=slug):
            if treatment.faq in (common, []):
                treatment.faq = faq
                treatment.save(update_fields=["faq"])


class Migration(migrations.Migration):
    dependencies = [("gallery", "0008_facet_summary")]
    operations = [migrations.RunPython(distinct_faq, migrations.RunPython.noop)]
