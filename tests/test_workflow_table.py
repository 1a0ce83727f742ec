"""The workflow's transitions table, tried in full over the staff pages: every state ×
every action × every role. An allowed step moves the case to its target; anything else
leaves it where it was with a clear answer (403, or a message), never a 500."""

import itertools

import pytest
from django.test import Client

from gallery.models import Case
from gallery.workflow import TRANSITIONS, allowed_actions, can_edit, editable_cases
from tests.conftest import make_case, make_user

pytestmark = pytest.mark.django_db

STATES = ["draft", "review", "published", "archived"]
ROLES = ["own photographer", "other photographer", "reviewer", "consent officer", "superuser"]
POSTS = {
    "submit": ("submit/", {}),
    "send_back": ("send-back/", {"comment": "Retake the after photo in daylight."}),
    "publish": ("publish/", {"override": "Checked by eye."}),
    "unpublish": ("unpublish/", {}),
    "archive": ("unpublish/", {"archive": "1"}),
    "reopen": ("reopen/", {}),
}
# The product's rules, written out independently of the table in gallery/workflow.py.
EXPECTED = {
    "submit": ({"draft"}, {"own photographer", "reviewer", "superuser"}, "review"),
    "send_back": ({"review"}, {"reviewer", "superuser"}, "draft"),
    "publish": ({"review"}, {"reviewer", "superuser"}, "published"),
    "unpublish": ({"published"}, {"reviewer", "superuser"}, "review"),
    "archive": ({"draft", "review", "published"}, {"reviewer", "superuser"}, "archived"),
    "reopen": ({"archived"}, {"reviewer", "superuser"}, "draft"),
}


def user_for(role: str, owner):
    match role:
        case "own photographer":
            return owner
        case "other photographer":
            return make_user(groups=["Photographers"])
        case "reviewer":
            return make_user(groups=["Reviewers"])
        case "consent officer":
            return make_user(groups=["Consent officers"])
        case "superuser":
            return make_user(is_superuser=True)


def case_in(state: str, owner) -> Case:
    published = state == "published"
    return make_case(
        status=state, created_by=owner, **({} if published else {"published_at": None})
    )


def test_the_written_rules_cover_every_transition():
    assert set(EXPECTED) == set(TRANSITIONS) == set(POSTS)


@pytest.mark.parametrize(
    "state,action", list(itertools.product(STATES, TRANSITIONS)), ids=lambda v: str(v)
)
def test_every_role_gets_exactly_the_transitions_the_rules_allow(
    state, action, django_capture_on_commit_callbacks
):
    sources, roles, target = EXPECTED[action]
    for role in ROLES:
        owner = make_user(groups=["Photographers"])
        case = case_in(state, owner)
        user = user_for(role, owner)
        allowed = state in sources and role in roles
        assert (action in allowed_actions(user, case)) == allowed, (role, state, action)
        client = Client()
        client.force_login(user)
        path, data = POSTS[action]
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/staff/cases/{case.pk}/{path}", data, follow=True)
        assert response.status_code in (200, 403), (role, state, action)
        case.refresh_from_db()
        if allowed:
            assert case.status == target, (role, state, action, response.content[-2000:])
            assert case.is_public == (target == "published")
        else:
            assert case.status == state, (role, state, action)
            if response.status_code == 200:  # the staff page, with the reason
                messages = [str(m) for m in response.context["messages"]]
                assert messages and all(m.strip() for m in messages), (role, state, action)


def test_the_editable_cases_queryset_agrees_with_can_edit_for_every_role_and_state():
    owner = make_user(groups=["Photographers"])
    cases = [case_in(state, owner) for state in STATES]
    for role in ROLES:
        user = user_for(role, owner)
        editable = set(editable_cases(user).values_list("pk", flat=True))
        for case in cases:
            assert (case.pk in editable) == can_edit(user, case), (role, case.status)
