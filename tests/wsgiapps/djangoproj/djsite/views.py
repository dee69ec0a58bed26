"""A view reading request.body (which Django reads only with a
CONTENT_LENGTH): its size and digest."""

import hashlib

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def body_digest(request):
    body = request.body
    return JsonResponse(
        {
            "length": request.META.get("CONTENT_LENGTH"),
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    )
