"""Learn, save, load in another process (or later), continue, predict, export.

    python examples/save_load_predict.py
"""
import os
import tempfile

import numpy as np
import tensorflow as tf

import tfpg

STEPS = int(os.environ.get("TFPG_EXAMPLE_STEPS", 4096))

if __name__ == "__main__":
    work = tempfile.mkdtemp(prefix="tfpg-example-")
    # the horizon of the schedules (here PPO's linear learning-rate decay) is fixed when the agent is built
    agent = tfpg.PPO("corridor_envs:Corridor-v0", seed=0, total_steps=2 * STEPS, linear_lr=True, num_envs=4,
                     horizon=64, progress=False, logdir=os.path.join(work, "runs"))
    agent.learn(STEPS)                                   # the first half of the horizon
    agent.save(os.path.join(work, "my-run"))             # config.json and a checkpoint
    agent.close()

    agent = tfpg.load(os.path.join(work, "my-run"))      # e.g. in a new process
    agent.learn()                                        # the rest of the horizon, exactly as without the break
    batch = np.array([[0.0, 0.0], [0.5, 1.0]], np.float32)
    print("greedy actions:", agent.predict(batch), "one observation:", agent.predict(batch[0]))

    path = agent.export(os.path.join(work, "saved_model"))
    served = tf.saved_model.load(path).signatures["serving_default"](observations=tf.constant(batch))["action"]
    assert (served.numpy() == agent.predict(batch)).all()   # the SavedModel acts as predict() does
    print(f"SavedModel at {path}; the Keras model: {agent.policy.name}")
    agent.close()
