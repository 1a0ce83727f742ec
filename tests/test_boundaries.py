"""The consent app stands without the gallery: nothing in consent/ or its templates imports
gallery, looks it up by name, reverses its URLs or builds on its templates. The gallery
learns of consent changes through consent's signal and tells the consent pages what it
holds through consent/hooks.py."""

import ast
import re
from pathlib import Path

from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(settings.BASE_DIR)
GALLERY = "gallery"
# gallery/urls.py and gallery/staff_urls.py.
GALLERY_NAMESPACES = ("gallery", "staff")
URL_CALLS = {"reverse", "reverse_lazy", "redirect", "resolve_url"}

TEMPLATE_URL = re.compile(r"""{%\s*url\s+["']([^"']+)["']""")
TEMPLATE_USES = re.compile(r"""{%\s*(extends|include)\s+["']([^"']+)["']""")


def consent_python() -> list[Path]:
    return sorted((ROOT / "consent").rglob("*.py"))


def consent_templates() -> list[Path]:
    found = [*(ROOT / "templates" / "consent").rglob("*"), *(ROOT / "consent").rglob("*")]
    return sorted(p for p in found if p.is_file() and p.suffix in (".html", ".txt", ".xml"))


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def gallery_references(source: str) -> list[tuple[int, str]]:
    """(line, what) for every import of gallery and every string naming it: a module or
    model ("gallery.Case", get_model("gallery", …)), a URL name ("staff:case") or a
    template ("gallery/…")."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == GALLERY:
                    found.append((node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] == GALLERY:
                found.append((node.lineno, f"from {node.module} import …"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            text = node.value
            if text == GALLERY or text.startswith((f"{GALLERY}.", f"{GALLERY}/")):
                found.append((node.lineno, repr(text)))
            elif is_gallery_url_name(text):
                found.append((node.lineno, repr(text)))
    return sorted(found)


def is_gallery_url_name(text: str) -> bool:
    namespace, colon, _name = text.partition(":")
    return bool(colon) and namespace in GALLERY_NAMESPACES


def url_names_in_python(source: str) -> list[tuple[int, str]]:
    """URL names passed as the first argument of reverse(), redirect() and the like."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0]
        if called in URL_CALLS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            if "/" not in first.value:  # redirect("/path/") is a path, not a name
                names.append((node.lineno, first.value))
    return sorted(names)


def template_problems(text: str) -> list[tuple[int, str]]:
    """(line, what) for each gallery template extended or included and each gallery URL
    reversed by namespace."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for _tag, name in TEMPLATE_USES.findall(line):
            if name.startswith(f"{GALLERY}/"):
                found.append((number, name))
        for name in TEMPLATE_URL.findall(line):
            if is_gallery_url_name(name):
                found.append((number, name))
    return found


def url_names_in_template(text: str) -> list[tuple[int, str]]:
    return [
        (number, name)
        for number, line in enumerate(text.splitlines(), start=1)
        for name in TEMPLATE_URL.findall(line)
    ]


def _url_views(resolver=None, namespace: str = "") -> dict[str, str]:
    """Every URL name, namespaced, and the module of its view."""
    views = {}
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            views.update(_url_views(entry, inner))
        elif isinstance(entry, URLPattern) and entry.name:
            views[f"{namespace}{entry.name}"] = entry.callback.__module__
    return views


def gallery_urls(used: list[tuple[str, int, str]]) -> list[str]:
    """The names among ``used`` (file, line, name) that lead to one of gallery's views,
    whatever their namespace (the patient's link pages are gallery's, unnamespaced)."""
    views = _url_views()
    return [
        f"{path}:{line}: {name} ({views[name]})"
        for path, line, name in used
        if views.get(name, "").split(".")[0] == GALLERY
    ]


def test_the_consent_app_never_imports_or_names_the_gallery():
    problems = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in consent_python()
        for line, what in gallery_references(path.read_text())
    ]
    assert problems == [], "\n".join(problems)


def test_the_consent_templates_never_build_on_gallery_templates_or_urls():
    problems = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in consent_templates()
        for line, what in template_problems(path.read_text())
    ]
    assert problems == [], "\n".join(problems)


def test_the_consent_app_never_links_to_a_gallery_page():
    used = [
        (path.relative_to(ROOT), line, name)
        for path in consent_python()
        for line, name in url_names_in_python(path.read_text())
    ] + [
        (path.relative_to(ROOT), line, name)
        for path in consent_templates()
        for line, name in url_names_in_template(path.read_text())
    ]
    assert used, "no URL name found in the consent app: the scan is broken"
    problems = gallery_urls(used)
    assert problems == [], "\n".join(problems)


def test_the_scan_finds_each_kind_of_reference():
    source = '''
"""A docstring may mention gallery.Case and gallery/cache.py."""
import gallery
import gallery.models as models
from gallery.models import Case
from django.apps import apps
Case = apps.get_model("gallery", "Case")
case = models.ForeignKey("gallery.Case", on_delete=None)
url = reverse("staff:case", args=[1])
page = render(request, "gallery/case_detail.html")
ok = reverse("consent:detail", args=[1])
'''
    found = [what for _line, what in gallery_references(source)]
    assert found == [
        "import gallery",
        "import gallery.models",
        "from gallery.models import …",
        "'gallery'",
        "'gallery.Case'",
        "'staff:case'",
        "'gallery/case_detail.html'",
    ]
    names = [name for _line, name in url_names_in_python(source)]
    assert names == ["staff:case", "consent:detail"]
    template = (
        '{% extends "gallery/case_detail.html" %}\n'
        "{% include 'gallery/_card.html' %}\n"
        "<a href=\"{% url 'gallery:list' %}\">{% url 'consent:list' %}</a>\n"
    )
    assert [what for _line, what in template_problems(template)] == [
        "gallery/case_detail.html",
        "gallery/_card.html",
        "gallery:list",
    ]
    assert gallery_urls([("x.py", 1, "patient-consent"), ("x.py", 2, "consent:list")]) == [
        "x.py:1: patient-consent (gallery.patient_link)"
    ]
