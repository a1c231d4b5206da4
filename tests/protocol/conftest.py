import pytest
from protocol_world import World, make_world


@pytest.fixture
def world() -> World:
    return make_world()
