from django.urls import path

from apps.notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.notification_list, name="list"),
    path("dropdown/", views.dropdown, name="dropdown"),
    path("count/", views.count, name="count"),
    path("<int:pk>/read/", views.mark_read, name="read"),
    path("read-all/", views.mark_all_read, name="read_all"),
    path("channels/", views.channels, name="channels"),
    path("channels/<int:pk>/edit/", views.channel_edit, name="channel_edit"),
    path("channels/<int:pk>/test/", views.channel_test, name="channel_test"),
    path("channels/<int:pk>/toggle/", views.channel_toggle, name="channel_toggle"),
    path("channels/<int:pk>/delete/", views.channel_delete, name="channel_delete"),
    path("mail/", views.mail_catcher, name="mail"),
]
