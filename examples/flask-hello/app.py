"""The sample app `make demo` deploys: says which dyno and release answered."""

import os

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def hello():
    return jsonify(
        message=os.environ.get("GREETING", "Hello from paas"),
        dyno=os.environ.get("DYNO"),
        release=os.environ.get("PAAS_RELEASE_VERSION"),
    )
