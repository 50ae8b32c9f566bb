"""The seed's API in FastAPI: the report's "switch to an asynchronous framework" optimization."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/api/v2/{msisdn}")
async def get_status(msisdn: str) -> dict[str, str]:
    return {"msisdn": msisdn, "status": "ok"}
