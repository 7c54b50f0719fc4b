"""The Trainer and Compare-runs pages' core: classifier recipes, background runs, k-fold, transfer learning."""
