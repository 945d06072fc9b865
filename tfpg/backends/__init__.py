"""Optional ways to run training: the graph backend (`graph`) and Ray rollout workers (`ray`)."""
