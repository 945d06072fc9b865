"""Networks, policies over tfp distributions, observation and reward normalisation, baselines."""
