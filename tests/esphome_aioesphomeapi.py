"""Home Assistant's own native-API client (aioesphomeapi) against facegate's simulated board.

Usage: esphome_aioesphomeapi.py HOST PORT [NOISE_KEY]. Connects, reads the device info, lists the entities,
subscribes to states, unlocks the door and calls the lift to floor 1 (select), waits until the board reports
both, and prints one JSON object for tests/esphome_aioesphomeapi.rs to check.
"""
import asyncio
import json
import sys

from aioesphomeapi import APIClient, LockCommand, LockEntityState, SelectState, SensorState


async def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    psk = sys.argv[3] if len(sys.argv) > 3 else None
    client = APIClient(host, port, None, noise_psk=psk, client_info="aioesphomeapi-test")
    await client.connect(login=True)
    info = await client.device_info()
    entities, _services = await client.list_entities_services()
    by_id = {e.object_id: e for e in entities}
    states: dict[int, object] = {}
    changed = asyncio.Event()

    def on_state(s) -> None:
        states[s.key] = s
        changed.set()

    client.subscribe_states(on_state)
    client.lock_command(by_id["door_lock"].key, LockCommand.UNLOCK)
    client.select_command(by_id["target_floor"].key, "1")

    def done() -> bool:
        lock = states.get(by_id["door_lock"].key)
        floor = states.get(by_id["current_floor"].key)
        return (
            isinstance(lock, LockEntityState)
            and lock.state == 2  # UNLOCKED
            and isinstance(floor, SensorState)
            and floor.state == 1.0
        )

    async def wait() -> None:
        while not done():
            changed.clear()
            await changed.wait()

    await asyncio.wait_for(wait(), 10)
    target = states.get(by_id["target_floor"].key)
    print(
        json.dumps(
            {
                "name": info.name,
                "api": [client.api_version.major, client.api_version.minor],
                "entities": sorted((type(e).__name__, e.object_id, e.key) for e in entities),
                "lock_unlocked": True,
                "floor": states[by_id["current_floor"].key].state,
                "target": target.state if isinstance(target, SelectState) else None,
            }
        )
    )
    await client.disconnect()


asyncio.run(main())
