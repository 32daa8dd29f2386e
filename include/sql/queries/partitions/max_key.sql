-- {partition}, {key}: identifiers. The newest row a partition holds (NULL when empty).
SELECT max({key}) FROM {partition}
