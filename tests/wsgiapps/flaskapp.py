"""A Flask application, as a Flask user writes it (served unchanged)."""

import hashlib

from flask import Flask, Response, request, stream_with_context

app = Flask(__name__)


@app.get("/")
def index():
    return '<form method="post" action="/form"><input name="name"></form>'


@app.post("/form")
def form():
    return f"hello {request.form['name']}, {request.form.getlist('tag')}"


@app.post("/upload")
def upload():
    f = request.files["file"]
    digest = hashlib.sha256()
    size = 0
    while True:
        piece = f.stream.read(1 << 16)
        if not piece:
            break
        digest.update(piece)
        size += len(piece)
    return {
        "name": f.filename,
        "size": size,
        "sha256": digest.hexdigest(),
        "note": request.form.get("note"),
    }


@app.post("/digest")
def digest():
    digest = hashlib.sha256()
    size = 0
    while True:
        piece = request.stream.read(1 << 16)
        if not piece:
            break
        digest.update(piece)
        size += len(piece)
    return {"length": request.content_length, "size": size, "sha256": digest.hexdigest()}


@app.get("/stream")
def stream():
    def generate():
        for i in range(5):
            yield f"line {i}\n"

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/boom")
def boom():
    raise RuntimeError("flask view failed")
