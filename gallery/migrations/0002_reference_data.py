from django.db import migrations

CONCERNS = [
    ("acne-scars", "Acne scars"),
    ("fine-lines-wrinkles", "Fine lines and wrinkles"),
    ("texture-pores", "Texture and pores"),
    ("pigmentation", "Pigmentation"),
    ("stretch-marks", "Stretch marks"),
    ("surgical-scars", "Surgical scars"),
]

SHARED_FACTORS = [
    {
        "name": "Skin type",
        "text": "Scarring responds differently from fine lines, and oily, dry and sensitive "
        "skin each heal in their own way. Deeper skin tones need settings chosen to avoid "
        "marks of pigment after treatment, so look for cases with your Fitzpatrick type.",
    },
    {
        "name": "Needle depth",
        "text": "Deeper needles reach further into the skin and can change more, but they also "
        "raise the chance of side effects. Every case here says the deepest setting used.",
    },
    {
        "name": "Number of sessions",
        "text": "Visible change usually takes a course of several sessions a few weeks apart. "
        "One session does not give the result of a full course.",
    },
    {
        "name": "Aftercare",
        "text": "Gentle skincare and strict sun protection in the days and weeks after each "
        "session make a real difference to the result.",
    },
    {
        "name": "Healing",
        "text": "Everyone heals at their own pace; age, genes and general health all play a part. "
        "That is why every case shows how long after the last session its photo was taken.",
    },
]

FAQ_COMMON = [
    {
        "q": "Does it hurt?",
        "a": "Most people feel a prickling or scratching sensation; some find it mildly "
        "uncomfortable, more so at deeper settings. A numbing cream applied beforehand keeps "
        "it comfortable for nearly everyone, and a face usually takes well under an hour.",
    },
    {
        "q": "What are the side effects?",
        "a": "Redness, some swelling and occasionally light bruising are normal and settle "
        "within a few days. Infection or scarring are rare and mostly follow poor hygiene or "
        "aftercare, which is why we give written aftercare instructions.",
    },
    {
        "q": "How long do results last?",
        "a": "New collagen keeps forming for months after a course, but the skin goes on ageing. "
        "Daily sun protection, a good skincare routine and an occasional maintenance session "
        "help the result last.",
    },
    {
        "q": "What is the difference between microneedling and microneedling with radiofrequency?",
        "a": "Radiofrequency microneedling adds heat delivered through the needles to the "
        "deeper layers of the skin. The heat drives more collagen building and can tighten "
        "and lift more than needling alone, at a higher price and with a somewhat higher "
        "chance of side effects.",
    },
]

TREATMENTS = [
    {
        "slug": "microneedling",
        "name": "Microneedling",
        "min_weeks_after": 4,
        "summary": "Collagen induction therapy: fine needles make tiny controlled wounds that "
        "the skin repairs with new collagen and elastin.",
        "description": "Microneedling, also called collagen induction therapy, passes very fine "
        "needles over the skin to create thousands of tiny channels. The skin closes them "
        "within hours and, over the following weeks, lays down fresh collagen and elastin. "
        "Texture becomes smoother, scars shallower and fine lines softer.\n\n"
        "Expect a course of several sessions a few weeks apart. Your skin looks pink, like "
        "a mild sunburn, for a day or two after each one. The real change builds slowly, so "
        "the after photos in this gallery were taken weeks after the last session, never on "
        "the day.",
    },
    {
        "slug": "rf-microneedling",
        "name": "Microneedling with radiofrequency",
        "min_weeks_after": 6,
        "summary": "Microneedling that also delivers radiofrequency heat into the deeper skin "
        "for firmer tightening and more collagen.",
        "description": "Radiofrequency (RF) microneedling insulates most of each needle and "
        "releases radiofrequency energy at its tip, warming the deeper layers of the skin "
        "where collagen is made. The combination of tiny wounds and heat gives a stronger "
        "remodelling signal than needling alone, which helps with deeper acne scars, "
        "laxity and stretch marks.\n\n"
        "Sessions are usually spaced four to six weeks apart. Redness and swelling can last a "
        "little longer than after plain microneedling, and collagen keeps remodelling for "
        "months, so results are judged at least six weeks after the last session.",
    },
]


def create(apps, schema_editor):
    Treatment = apps.get_model("gallery", "Treatment")
    Concern = apps.get_model("gallery", "Concern")
    for slug, name in CONCERNS:
        Concern.objects.get_or_create(slug=slug, defaults={"name": name})
    for data in TREATMENTS:
        Treatment.objects.get_or_create(
            slug=data["slug"],
            defaults={**data, "factors": SHARED_FACTORS, "faq": FAQ_COMMON},
        )


class Migration(migrations.Migration):
    dependencies = [("gallery", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
