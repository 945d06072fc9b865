import pytest

from tfpg.maths.schedules import LinearSchedule, constant_or_linear


def test_linear_schedule():
    lr = LinearSchedule(3e-4, total_steps=1000)
    assert lr(0) == pytest.approx(3e-4)
    assert lr(250) == pytest.approx(2.25e-4)
    assert lr(1000) == 0.0 and lr(5000) == 0.0
    clip = LinearSchedule(0.2, total_steps=100, end=0.05)
    assert clip(50) == pytest.approx(0.125) and clip(200) == pytest.approx(0.05)
    assert constant_or_linear(0.2, False, 100)(70) == pytest.approx(0.2)
    assert constant_or_linear(0.2, True, 100)(70) == pytest.approx(0.06)
    with pytest.raises(ValueError):
        LinearSchedule(1.0, total_steps=0)
