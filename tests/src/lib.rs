//! Not built yet: the multi-process cluster harness is delivered by issue 6.
