"""The model kinds and verbs of this CNN Studio: importing this module registers every one of them.

The one list of the modules that register themselves (`core.engine.recipe.register_recipe`,
`core.engine.verbs.register_verb`). The composition roots import it (the command line, the pages, the tests);
nothing in the engine or the run service does, so they stay free of any kind. A new kind is a package under
`core/` with one registered recipe class, plus one line here.
"""
import core.classifier  # noqa: F401  (the classifier kind and its verbs)
import core.latent.recipe  # noqa: F401  (the autoencoder kind and the probe verb)
import core.composer.recipes  # noqa: F401  (the pair CNN and CRNN kinds and the sweep-lambda verb)
import core.captions.recipe  # noqa: F401  (the captioner kind)
import core.runs.worker  # noqa: F401  (the run service's worker verb)
import core.sweep.study  # noqa: F401  (the sweep verb)
import core.web.verbs  # noqa: F401  (the export and web-runtime verbs)
import core.teach.verbs  # noqa: F401  (the teach verb: a head taught from a few shots)
import core.inside.verbs  # noqa: F401  (the visualize verb: feature visualisation of a channel or a class)
