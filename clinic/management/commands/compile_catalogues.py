"""Compile the translation catalogues (locale/<code>/LC_MESSAGES/django.po) to the .mo
files Django reads, with polib: no GNU gettext needed on the machine (Django's own
``compilemessages`` calls ``msgfmt``). ``make run`` and ``make test`` run it; the .mo files
are build output and never committed, so they cannot drift from the catalogues.

A catalogue with an entry still marked fuzzy, or a translation whose placeholders differ
from the English text's, is refused: it would show English, or break, on a page."""

import os
import re
from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def problems(catalogue: polib.POFile) -> list[str]:
    """What is wrong with a catalogue: untranslated or fuzzy entries, placeholders lost."""
    found = []
    for entry in catalogue:
        if entry.obsolete:
            continue
        label = repr(entry.msgid[:60])
        if "fuzzy" in entry.flags:
            found.append(f"{label} is marked fuzzy")
        if entry.msgid_plural:
            forms = [entry.msgstr_plural.get(i, "") for i in sorted(entry.msgstr_plural)]
            if not forms or not all(forms):
                found.append(f"{label} has an empty plural form")
            wanted = set(placeholders(entry.msgid_plural)) - {"%(counter)s", "%(count)s"}
            if any(not wanted <= set(placeholders(form)) for form in forms):
                found.append(f"{label}: a plural form lost a placeholder")
        else:
            if not entry.msgstr:
                found.append(f"{label} is not translated")
            elif placeholders(entry.msgstr) != placeholders(entry.msgid):
                found.append(f"{label}: the placeholders differ")
    return found


def catalogues(roots=None) -> list[Path]:
    roots = settings.LOCALE_PATHS if roots is None else roots
    return sorted(p for root in roots for p in Path(root).glob("*/LC_MESSAGES/*.po"))


def compile_catalogues(roots=None) -> list[Path]:
    """Compile every catalogue; the ones compiled. Refuses (CommandError) a catalogue with
    problems, leaving its .mo as it was."""
    done, wrong = [], []
    for path in catalogues(roots):
        catalogue = polib.pofile(str(path))
        found = problems(catalogue)
        if found:
            wrong += [f"{path}: {problem}" for problem in found]
            continue
        # Written beside and renamed into place: a test run or a server starting at the same
        # moment reads the old file or the new one, never half of one.
        partial = path.with_suffix(f".mo.{os.getpid()}")
        catalogue.save_as_mofile(str(partial))
        partial.replace(path.with_suffix(".mo"))
        done.append(path)
    if wrong:
        raise CommandError("\n".join(wrong))
    return done


class Command(BaseCommand):
    help = "Compile locale/*/LC_MESSAGES/*.po to .mo (pure Python; checks them first)."

    def handle(self, *args, **options) -> None:
        for path in compile_catalogues():
            self.stdout.write(f"Compiled {path.relative_to(settings.BASE_DIR)}")
