"""The seed report's Flask app, exactly: GET /api/v2/<msisdn> -> {"msisdn": ..., "status": "ok"}."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/api/v2/<msisdn>", methods=["GET"])
def get_status(msisdn: str):  # type: ignore[no-untyped-def]
    response = {"msisdn": msisdn, "status": "ok"}
    return jsonify(response)
