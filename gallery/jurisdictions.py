"""The advertising rules of each country a clinic location can be in, written once.

A location's country selects one rule set. The rule sets join the publication rule
(``Case.objects.public()``, ``Case.publication_problems()``, and so the listing and every
public surface): a case its location's rules forbid is not public, and the reason is named
when a reviewer tries to publish it. The rule set's warning text goes on every outcome
image (card and case page), into the disclosure and into the API.

Each rule carries the source it comes from. They are the rules a before/after gallery of
a skin clinic meets; they are not legal advice, and a clinic checks them with its own
adviser before opening a location in a new country.

What each field means:

``minimum_age``
    The youngest patient whose photos may advertise a treatment there. The consent
    records one fact, ``patient_is_adult`` (18 or over), and the publication rule requires
    it everywhere; a rule set may not ask for a higher age, which that fact cannot show
    (``check_rules`` refuses it at start-up).
``warning``
    Text every outcome image there must carry ("" for none).
``prescription_only_reason``
    Why a treatment involving a prescription-only medicine (``Treatment.prescription_only``)
    may not be advertised to the public there ("" where it may).
``not_advertisable``
    Further treatments, by slug, that may not be advertised there, each with its reason.
``identifiable_needs_scope``
    Whether a photo that shows who the patient is needs the consent's explicit
    "identifiable photos allowed" (``Consent.identifiable``). The gallery's own rule asks
    for it everywhere, so no rule set may relax it (``check_rules``).
``min_weeks_after``
    Treatment slug -> the earliest week after the last session an after photo may be
    shown there, overriding ``Treatment.min_weeks_after`` (checked at submit and publish,
    with the other interval checks in ``gallery/comparability.py``).
"""

from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

# What ``Consent.patient_is_adult`` confirms.
ADULT_AGE = 18


@dataclass(frozen=True)
class Rules:
    code: str
    name: str  # as it reads after "in": "the United Kingdom"
    countries: tuple[str, ...]
    minimum_age: int
    warning: str = ""
    prescription_only_reason: str = ""
    not_advertisable: dict[str, str] = field(default_factory=dict)
    identifiable_needs_scope: bool = True
    min_weeks_after: dict[str, int] = field(default_factory=dict)


# The member states of the European Union (ISO 3166-1 alpha-2).
EU_COUNTRIES = {
    "AT": "Austria",
    "BE": "Belgium",
    "BG": "Bulgaria",
    "HR": "Croatia",
    "CY": "Cyprus",
    "CZ": "Czechia",
    "DK": "Denmark",
    "EE": "Estonia",
    "FI": "Finland",
    "FR": "France",
    "DE": "Germany",
    "GR": "Greece",
    "HU": "Hungary",
    "IE": "Ireland",
    "IT": "Italy",
    "LV": "Latvia",
    "LT": "Lithuania",
    "LU": "Luxembourg",
    "MT": "Malta",
    "NL": "Netherlands",
    "PL": "Poland",
    "PT": "Portugal",
    "RO": "Romania",
    "SK": "Slovakia",
    "SI": "Slovenia",
    "ES": "Spain",
    "SE": "Sweden",
}

COUNTRIES = {
    "US": "United States",
    "GB": "United Kingdom",
    "AU": "Australia",
    **EU_COUNTRIES,
}

RULE_SETS = (
    Rules(
        code="US",
        name="the United States",
        countries=("US",),
        # The age of majority in almost every state (a minor's photos need a parent's
        # authorisation, which the gallery does not take). State law, e.g. Cal. Fam.
        # Code § 6500; the gallery's own floor elsewhere too.
        minimum_age=18,
        # No federal warning text: the FTC's Endorsement Guides (16 CFR Part 255, § 255.2)
        # ask that results not be presented as typical, which every disclosure's
        # "Individual results vary." already says.
        warning="",
        # Prescription drugs may be advertised to consumers in the US (FDA, 21 CFR 202.1,
        # with its fair-balance requirements): no prohibition here.
        prescription_only_reason="",
        # HIPAA Privacy Rule: using a patient's photos to market a service needs the
        # patient's written authorisation (45 CFR 164.508(a)(3)); a full-face photo is an
        # identifier (45 CFR 164.514(b)(2)(i)(Q)).
        identifiable_needs_scope=True,
    ),
    Rules(
        code="UK",
        name="the United Kingdom",
        countries=("GB",),
        # Botulinum Toxin and Cosmetic Fillers (Children) Act 2021, and the CAP Code's
        # rule (2022) that adverts for cosmetic interventions must not be directed at
        # under-18s.
        minimum_age=18,
        warning="",
        # Human Medicines Regulations 2012, regulation 284: no advertisement to the public
        # of a prescription-only medicine; CAP Code rule 12.12.
        prescription_only_reason=(
            "it involves a prescription-only medicine, which may not be advertised to the "
            "public (Human Medicines Regulations 2012, regulation 284; CAP Code rule 12.12)"
        ),
        # UK GDPR Article 9(2)(a): photos revealing health need the patient's explicit
        # consent, identifiable ones for that use in particular.
        identifiable_needs_scope=True,
    ),
    Rules(
        code="EU",
        name="the European Union",
        countries=tuple(EU_COUNTRIES),
        # The gallery's floor; member states' own consumer and medical-advertising law
        # (and GDPR Article 8 for online consent, 16 by default) set nothing lower for
        # health advertising by a clinic.
        minimum_age=18,
        warning="",
        # Directive 2001/83/EC, Article 88(1)(a): member states prohibit advertising to
        # the general public of medicinal products available on prescription only.
        prescription_only_reason=(
            "it involves a prescription-only medicine, which may not be advertised to the "
            "general public (Directive 2001/83/EC, Article 88(1))"
        ),
        # GDPR Article 9(2)(a): explicit consent to process health data, and Article
        # 4(11): consent specific to the purpose (identifiable photos in advertising).
        identifiable_needs_scope=True,
    ),
    Rules(
        code="AU",
        name="Australia",
        countries=("AU",),
        # Ahpra and National Boards, Guidelines for advertising higher risk non-surgical
        # cosmetic procedures (in force 2 September 2025): no advertising directed at
        # people under 18, nor using their images.
        minimum_age=18,
        # Ahpra's advertising guidance for invasive cosmetic procedures asks that
        # before/after images carry a warning that the procedure has risks and to seek
        # a second opinion (Guidelines for advertising a regulated health service, 2020;
        # the 2023 cosmetic surgery advertising guidelines).
        warning=(
            "Any invasive procedure carries risks. Before proceeding, you should seek a "
            "second opinion from an appropriately qualified health practitioner."
        ),
        # Therapeutic Goods Act 1989, section 42DL(10), and the Therapeutic Goods
        # (Advertising Code) Instrument 2021: prescription-only (Schedule 4) medicines
        # may not be advertised to the public.
        prescription_only_reason=(
            "it involves a prescription-only (Schedule 4) medicine, which may not be "
            "advertised to the public (Therapeutic Goods Act 1989, section 42DL)"
        ),
        # Australian Privacy Principle 6 (Privacy Act 1988): using health information for
        # a secondary purpose such as advertising needs the patient's consent to it.
        identifiable_needs_scope=True,
    ),
)


def country_choices() -> list[tuple[str, str]]:
    return sorted(COUNTRIES.items(), key=lambda kv: kv[1])


def rules_for(country: str) -> Rules:
    """The rule set of a country. A country without one cannot be chosen for a location."""
    return next(rules for rules in RULE_SETS if country in rules.countries)


def check_rules(rule_sets=None) -> None:
    """Refuse a rule set the publication rule could not enforce (at start-up)."""
    rule_sets = RULE_SETS if rule_sets is None else rule_sets
    for rules in rule_sets:
        if rules.minimum_age > ADULT_AGE:
            raise ImproperlyConfigured(
                f"{rules.code}: a minimum age above {ADULT_AGE} cannot be checked: the "
                "consent records only that the patient is an adult."
            )
        if not rules.identifiable_needs_scope:
            raise ImproperlyConfigured(
                f"{rules.code}: identifiable photos need the consent's explicit scope in "
                "the gallery's own rule; a rule set cannot relax it."
            )
    missing = set(COUNTRIES) - {c for r in rule_sets for c in r.countries}
    if missing:
        raise ImproperlyConfigured(f"No rule set for {', '.join(sorted(missing))}.")


def refused_q() -> Q:
    """The cases some location's rules forbid, as one condition on ``Case`` (the
    publication rule excludes it).

    Written with the ids of the locations and treatments concerned, each an uncorrelated
    subquery run once (``location_id IN (SELECT id FROM location WHERE country IN …)``),
    not as joins: joined into the rule, the two small tables led PostgreSQL to a plan
    that took minutes for ``sync_listing`` over a few hundred cases."""
    from gallery.models import Location, Treatment

    def concerning(countries, treatments: Q) -> Q:
        return Q(
            location_id__in=Location.objects.filter(country__in=countries).values("pk"),
            treatment_id__in=Treatment.objects.filter(treatments).values("pk"),
        )

    # One condition for every country that forbids advertising prescription-only
    # medicines, then one for each rule set's own list.
    no_prescription_ads = [c for r in RULE_SETS if r.prescription_only_reason for c in r.countries]
    conditions = []
    if no_prescription_ads:
        conditions.append(concerning(no_prescription_ads, Q(prescription_only=True)))
    for rules in RULE_SETS:
        if rules.not_advertisable:
            slugs = sorted(rules.not_advertisable)
            conditions.append(concerning(rules.countries, Q(slug__in=slugs)))
    return reduce(or_, conditions, Q(pk__in=[]))


def refusals(country: str, treatment) -> list[str]:
    """Why this location's rules forbid advertising this treatment, in plain words."""
    rules = rules_for(country)
    reasons = []
    if treatment.prescription_only and rules.prescription_only_reason:
        reasons.append(rules.prescription_only_reason)
    if treatment.slug in rules.not_advertisable:
        reasons.append(rules.not_advertisable[treatment.slug])
    return [
        f"Not advertisable in {rules.name}: {treatment.name.lower()} — {reason}."
        for reason in reasons
    ]


def min_weeks_after(country: str, treatment) -> int:
    """The earliest week after the last session an after photo may be shown there."""
    return rules_for(country).min_weeks_after.get(treatment.slug, treatment.min_weeks_after)


check_rules()
