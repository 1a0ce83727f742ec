from django.contrib.sitemaps import Sitemap

from gallery.models import Case, Treatment


class CaseSitemap(Sitemap):
    changefreq = "monthly"

    def items(self):
        return Case.objects.public().order_by("-published_at").only("public_id", "updated_at")

    def lastmod(self, case: Case):
        return case.updated_at


class TreatmentSitemap(Sitemap):
    changefreq = "monthly"

    def items(self):
        return Treatment.objects.all()
