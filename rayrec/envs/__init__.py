"""User simulator: response models, quit models, the batched core, the gym env and its RLlib registration.

Import the pieces from their modules (``rayrec.envs.core``, ``rayrec.envs.recsim_env`` …); this
package file stays empty of imports so loading a response model never pulls in gymnasium or Ray.
"""
