"""Test-time adaptation: spec strings -> labels, masked per-group Adam (or SGD), online buffers, `adapt_step`."""
from adajepa_jax.adaptation.adapt import (OPTIMIZERS, AdaptSetting, adapt_step, add_adapters, buffer_slots,
                                          check_optimizer, combine, learning_rates, make_adapt_optimizer, partition,
                                          prepare, setting_of, settings_table, union_spec, window_losses)
from adajepa_jax.adaptation.buffer import (POLICIES, WEIGHTINGS, Buffer, BufferRule, buffer_add, buffer_init,
                                           buffer_rescore, buffer_rule, buffer_size, check_buffer, merged_weights)
from adajepa_jax.adaptation.spec import (ATOMS, DEFAULT, Labels, adapts_encoder_trunk, names, parse, resolve,
                                         resolve_paths, trainable_mask, with_adapters)
