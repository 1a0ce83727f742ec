from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path, re_path

from clinic.i18n import switch_language
from gallery import patient_link
from gallery import views as gallery_views

# The public pages exist in every language of settings.LANGUAGES: English at the plain
# URLs, the others under their prefix (/es/gallery/). The API is language-neutral and
# answers only at its plain URL (clinic/i18n.py).
urlpatterns = [
    *i18n_patterns(path("", include("gallery.urls")), prefix_default_language=False),
    path("", include("analytics.urls")),
    path("language/<str:language>/", switch_language, name="switch-language"),
    path("healthz", gallery_views.healthz, name="healthz"),
    path("robots.txt", gallery_views.robots_txt, name="robots"),
    path("sitemap.xml", gallery_views.sitemap_xml, name="sitemap"),
    path("sitemap-<slug:section>.xml", gallery_views.sitemap_section, name="sitemap-section"),
    re_path(r"^media/public/(?P<path>.+)$", gallery_views.public_media, name="public-media"),
    path("staff/consents/", include("consent.urls")),
    path("staff/", include("gallery.staff_urls")),
    path("consent/<str:token>/", patient_link.patient_page, name="patient-consent"),
    path("consent/<str:token>/withdraw/", patient_link.patient_withdraw, name="patient-withdraw"),
    path("consent/<str:token>/narrow/", patient_link.patient_narrow, name="patient-narrow"),
    path("consent/<str:token>/renew/", patient_link.patient_renew, name="patient-renew"),
    path("admin/", admin.site.urls),
]

# Branded error pages (templates/404.html and 500.html).
handler404 = "gallery.views.page_not_found"
handler500 = "gallery.views.server_error"
