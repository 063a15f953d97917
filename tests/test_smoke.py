def test_append_then_read(client, stream):
    r = client.post(f"/v1/streams/{stream}/events", json={"type": "T", "data": {"a": 1}})
    assert r.status_code == 201
    r = client.get(f"/v1/streams/{stream}/events")
    assert r.json()["events"][0]["data"] == {"a": 1}
