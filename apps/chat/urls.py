from django.urls import path

from apps.chat import views

app_name = "chat"

urlpatterns = [
    path("", views.chat_index, name="index"),
    path("<slug:slug>/", views.chat_room, name="room"),
    path("<slug:slug>/history/", views.chat_history, name="history"),
    path("<slug:slug>/rooms/", views.chat_rooms, name="rooms"),
    path("<slug:slug>/post/", views.chat_post, name="post"),
]
