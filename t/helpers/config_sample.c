/*
 * config_sample.c - print the commented sample configuration generated
 * from the parameter table (make sample writes it to etc/relayd.conf).
 */
#include <stdio.h>
#include "config.h"

int main(void)
{
	config_sample(stdout);
	return 0;
}
