"""The seed report's Flask app, exactly: GET /api/v2/<msisdn> -> {"msisdn": ..., "status": "ok"}."""

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.route("/api/v2/<msisdn>", methods=["GET"])
def get_status(msisdn: str) -> Response:
    response = {"msisdn": msisdn, "status": "ok"}
    return jsonify(response)
